"""Media: audio and video endpoints (sources and sinks) for calls."""
