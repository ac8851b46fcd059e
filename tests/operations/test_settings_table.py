"""The README's settings tables list every setting in the code, with its default.

A setting added to the code without a row (or a default changed in one
place only) fails here, so the tables stay a complete reference.
"""

import importlib
import importlib.metadata
import os
import re

import pytest

from simplestack import settings

README = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), "README.md")

# The sentence that introduces each table, and the defaults it documents.
TABLES = {
    "Settings of the service:": settings.DEFAULTS,
    "Settings that the service reads for every hypervisor type":
        settings.TYPE_DEFAULTS,
}
# Adapter entry point name -> the sentence that introduces its table.
ADAPTER_TABLES = {
    "libvirt": "Settings of the libvirt adapter",
    "xen": "Settings of the Xen adapter",
    "vmware": "Settings of the VMware adapter",
}
# How the README writes an empty default.
EMPTY_DEFAULT_WORDS = ("empty", "none", "required", "by driver")
KEY_CELL = re.compile(r"^`([^`]+)`$")


def read_settings_section():
    with open(README, encoding="utf-8") as readme:
        text = readme.read()
    start = text.index("### Settings\n")
    end = text.find("\n### ", start + 1)
    return text[start:end if end != -1 else len(text)]


def parse_tables(section):
    """Return {introducing paragraph: [(key cell, default cell), ...]}."""
    tables = {}
    paragraph = []
    rows = None
    after_blank = False
    for line in section.splitlines():
        if line.startswith("|"):
            if rows is None:
                rows = tables.setdefault(" ".join(paragraph), [])
                continue  # the header row
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if set(cells[0]) <= {"-"}:
                continue  # the separator row
            rows.append((cells[0], cells[1]))
        elif not line.strip():
            after_blank = True
            rows = None
        else:
            # A blank line ends a paragraph, but one line still separates
            # the paragraph from the table it introduces.
            if after_blank:
                paragraph = []
            after_blank = False
            paragraph.append(line.strip())
    return tables


def find_table(tables, introduction):
    for paragraph, rows in tables.items():
        if paragraph.startswith(introduction):
            return rows
    raise AssertionError(
        "README.md has no settings table introduced by %r" % introduction)


def adapter_defaults(entry_point_name):
    entry_point, = importlib.metadata.entry_points(
        group=settings.ENTRY_POINT_GROUP, name=entry_point_name)
    package = entry_point.value.split(":")[0]
    return importlib.import_module(package + ".settings").DEFAULT_SETTINGS


def documented_tables():
    cases = [pytest.param(introduction, defaults, id=introduction[:40])
             for introduction, defaults in TABLES.items()]
    for name, introduction in ADAPTER_TABLES.items():
        cases.append(pytest.param(
            introduction, adapter_defaults(name), id=name))
    return cases


def test_every_adapter_has_table():
    names = {entry_point.name for entry_point in
             importlib.metadata.entry_points(
                 group=settings.ENTRY_POINT_GROUP)}
    assert names <= set(ADAPTER_TABLES)


@pytest.mark.parametrize("introduction, defaults", documented_tables())
def test_table_matches_code_defaults(introduction, defaults):
    rows = find_table(parse_tables(read_settings_section()), introduction)
    documented = {}
    for key_cell, default_cell in rows:
        match = KEY_CELL.match(key_cell)
        assert match, "key cell %r is not one `name`" % key_cell
        documented[match.group(1)] = default_cell

    missing = sorted(set(defaults) - set(documented))
    assert not missing, (
        "settings without a row under %r in README.md: %s"
        % (introduction, ", ".join(missing)))
    unknown = sorted(set(documented) - set(defaults))
    assert not unknown, (
        "rows under %r in README.md name no setting in the code: %s"
        % (introduction, ", ".join(unknown)))

    for key, default in defaults.items():
        cell = documented[key]
        if default == "":
            assert cell.lower().startswith(EMPTY_DEFAULT_WORDS), (
                "%s has an empty default; its README cell %r should start "
                "with one of %s" % (key, cell, ", ".join(EMPTY_DEFAULT_WORDS)))
        else:
            assert "`%s`" % default in cell, (
                "%s defaults to %r in the code, but README.md says %r"
                % (key, default, cell))
