"""Motion representation: myo28 positions <-> model features, their statistics, and motion metrics."""
