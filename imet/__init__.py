"""imet: predict museum artwork attributes from images, and show why."""

__version__ = "0.1.0"
