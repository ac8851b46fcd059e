"""The base class of traversal resources."""


class Resource:
    """A node of the tree; ``__name__`` and ``__parent__`` give its URL."""

    __name__ = ""
    __parent__ = None

    def __init__(self, name, parent):
        self.__name__ = name
        self.__parent__ = parent
