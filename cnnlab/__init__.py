"""cnnlab: reproduce the classic results of CNN lectures with one Keras 3 library."""

__version__ = "0.1.0"
