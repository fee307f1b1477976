"""newtonbench: does my video model obey Newton's laws?"""

__version__ = "0.1.0"
