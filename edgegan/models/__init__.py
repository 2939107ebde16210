"""Model zoo and loading of user generators."""
from .loading import LoadedModel, load_generator, save_checkpoint
from .spec import InputSpec
from .zoo import FAMILIES, ZOO, ZooEntry

__all__ = ["FAMILIES", "ZOO", "InputSpec", "LoadedModel", "ZooEntry", "load_generator", "save_checkpoint"]
