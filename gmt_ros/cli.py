"""`gmt-ros` command line (placeholder until subcommands land)."""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gmt-ros")
    parser.parse_args(argv)
    return 0
