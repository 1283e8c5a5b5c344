"""Writers of miniature, format-exact corpus replicas (TUAB, PTB-XL) for the demo and the tests.
Each writer is seeded: the same seed gives a byte-identical tree."""

from biosig_ingest.samples.ptbxl import PtbxlReplica, ReplicaEcg, write_ptbxl_replica
from biosig_ingest.samples.tuab import (
    InjectedSine,
    ReplicaEdf,
    TuabReplica,
    write_tuab_like_edf,
    write_tuab_replica,
)

__all__ = [
    "InjectedSine",
    "PtbxlReplica",
    "ReplicaEcg",
    "ReplicaEdf",
    "TuabReplica",
    "write_ptbxl_replica",
    "write_tuab_like_edf",
    "write_tuab_replica",
]
