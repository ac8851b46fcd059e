"""Checks on text that callers put into paths and names."""

import unicodedata

# Unicode categories rejected in path segments and names: control
# characters (Cc, which includes NUL), surrogates (Cs) and line and
# paragraph separators (Zl, Zp).
CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def has_control_character(text):
    return any(unicodedata.category(char) in CONTROL_CATEGORIES
               for char in text)
