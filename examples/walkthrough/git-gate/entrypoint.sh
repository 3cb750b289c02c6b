#!/bin/sh
# stand-in git-gate entrypoint
