"""``python -m intunedd``: the same CLI as the ``intunedd`` console script."""

from intunedd.cli import main

if __name__ == "__main__":
    main()
