"""The state-space generator in use: its text encoders and the inference engine (`myo generate --model ssm/NAME`)."""
