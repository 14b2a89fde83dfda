"""myo: text-driven human motion on the anatomical myo28 skeleton."""

__version__ = "0.1.0"
