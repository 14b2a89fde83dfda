"""The state-space generator (ssm/NAME): the model (model.py), its text encoders, latent mode, the inference
engine (`myo generate --model ssm/NAME`) and its training (train.py)."""
