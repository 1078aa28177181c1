"""``python -m gasbuild`` behaves exactly as the ``gasbuild`` script."""

from gasbuild.cli import main

if __name__ == "__main__":
    main(prog_name="gasbuild")
