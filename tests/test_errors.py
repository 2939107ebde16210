"""The one-line reason helper used for errors and failed rows."""
from edgegan.errors import first_line


def test_first_line_is_uncoloured_capped_and_never_empty():
    assert first_line(ValueError("\x1b[31mbad op\x1b[0m\ntraceback...")) == "bad op"
    assert first_line(RuntimeError("x" * 500), 160) == "x" * 160
    assert first_line(KeyError()) == "KeyError"  # empty message: the type, not an IndexError
    assert first_line(OSError(), default="?") == "?"
