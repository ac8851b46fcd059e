"""Checks on text that callers put into paths and names."""

import unicodedata

# Unicode categories rejected in path segments and names: control
# characters (Cc, which includes NUL), surrogates (Cs) and line and
# paragraph separators (Zl, Zp).
CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

# The noncharacters that XML 1.0 excludes. Names and ids reach every
# hypervisor inside XML (libvirt's domain XML, XAPI's XML-RPC, vSphere's
# SOAP), which cannot carry them, so the hypervisor would fail with a 502.
XML_NONCHARACTERS = frozenset("\ufffe\uffff")


def has_forbidden_character(text):
    """Tell whether ``text`` has a control character, a surrogate, a line
    or paragraph separator, or U+FFFE or U+FFFF."""
    return any(unicodedata.category(char) in CONTROL_CATEGORIES
               or char in XML_NONCHARACTERS for char in text)
