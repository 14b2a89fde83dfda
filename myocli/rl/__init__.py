"""Physics: the simulated myo28 humanoid, the motion-tracking environment and the PPO learner."""
