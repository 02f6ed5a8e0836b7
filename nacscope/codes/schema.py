"""The code-set format's identity: name, version, HDF5 bounds and layer kinds (``docs/format.md``)."""

FORMAT_NAME = "nacscope.codeset"
FORMAT_VERSION = 1
#: Minor revision of v1 (readers of any v1 minor read every v1 file). 1.2: cached analyses live in a
#: sidecar ``<file>.cache`` and finished files are never reopened for writing; files are written with
#: HDF5 format bounds v110..v110 so that HDF5 1.10 reads them. (1.1 is the ``model_source`` attribute.)
FORMAT_MINOR = 2
#: HDF5 file-format bounds of every file nacscope writes: SWMR needs >= v110; <= v110 keeps HDF5 1.10 readers.
LIBVER = ("v110", "v110")
LAYER_KINDS = ("relu", "code", "imported", "other")
