"""MoP: Mixture of Pruners.

The algorithm lives here once (everything model-specific in families/); the model folders
(Llama2/, Llama3/, Llava/, Custom/) only hold
defaults and thin entry points.
"""

__version__ = "0.1.0"
