"""Small helpers shared by the core: atomic writes, file locks."""
