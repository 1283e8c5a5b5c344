"""Writers of miniature, format-exact corpus replicas (TUAB, PTB-XL, SEED, SEED-IV, DEAP) for the demo and the tests.
Each writer is seeded: the same seed gives a byte-identical tree."""

from biosig_ingest.samples.deap import DeapReplica, ReplicaDat, write_deap_replica
from biosig_ingest.samples.mimic import MimicReplica, ReplicaStudy, write_mimic_replica
from biosig_ingest.samples.ptbxl import PtbxlReplica, ReplicaEcg, write_ptbxl_replica
from biosig_ingest.samples.seed import (
    ReplicaMat,
    SeedReplica,
    write_seed_iv_replica,
    write_seed_replica,
)
from biosig_ingest.samples.tuab import (
    InjectedSine,
    ReplicaEdf,
    TuabReplica,
    write_tuab_like_edf,
    write_tuab_replica,
)
from biosig_ingest.samples.tuh_family import (
    TuhEvent,
    TuhFamilyReplica,
    TuhFile,
    write_tuar_replica,
    write_tueg_replica,
    write_tuev_replica,
    write_tusz_replica,
)

__all__ = [
    "DeapReplica",
    "InjectedSine",
    "MimicReplica",
    "PtbxlReplica",
    "ReplicaDat",
    "ReplicaEcg",
    "ReplicaEdf",
    "ReplicaMat",
    "ReplicaStudy",
    "SeedReplica",
    "TuabReplica",
    "TuhEvent",
    "TuhFamilyReplica",
    "TuhFile",
    "write_deap_replica",
    "write_mimic_replica",
    "write_ptbxl_replica",
    "write_seed_iv_replica",
    "write_seed_replica",
    "write_tuab_like_edf",
    "write_tuab_replica",
    "write_tuar_replica",
    "write_tueg_replica",
    "write_tuev_replica",
    "write_tusz_replica",
]
