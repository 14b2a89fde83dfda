"""Physics (rl/NAME): the simulated myo28 humanoid, the motion-tracking environment, the policy network
(policy.py), the PPO learner (ppo.py), tracking with a trained policy (track.py) and training it (train.py)."""
