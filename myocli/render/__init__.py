"""Rendering myo28 motion to video, gif and png: a shaded body on a checkered floor (MuJoCo)."""

from myocli.render.api import render_motion

__all__ = ["render_motion"]
