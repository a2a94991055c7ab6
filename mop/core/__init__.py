"""What every layer uses and that imports nothing else of mop: atomic writes and one-line errors
(io), the names of every folder and metadata file (layout), argument parsing (args), disk use
(disk)."""
