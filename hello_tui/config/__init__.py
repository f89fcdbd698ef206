"""Configuration: one TOML file, validated into typed settings with defaults."""

from hello_tui.config.loader import ConfigError, load_config, save_config, settings_to_dict
from hello_tui.config.paths import Paths, resolve_paths
from hello_tui.config.settings import Settings

__all__ = [
    "ConfigError",
    "Paths",
    "Settings",
    "load_config",
    "resolve_paths",
    "save_config",
    "settings_to_dict",
]
