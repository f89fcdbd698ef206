"""CLI test fixtures: the named PulseAudio null-sink devices of the call tests."""

from tests.call.conftest import pulse_devices  # noqa: F401  (a fixture, used by name)
