"""Motion representation: myo28 positions <-> model features, their statistics, floor placement and frame
rate (floor.py, timing.py), inverse kinematics, physics terms and refinement, and motion metrics."""
