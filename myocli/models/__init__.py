"""Models: each module is a Config dataclass followed by the nn.Module it configures."""
