"""edgegan: take a compressed GAN generator to validated edge artifacts and measure them."""
__version__ = "0.1.0"
