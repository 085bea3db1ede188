"""`python -m mtdsl`: the mtdsl command (also under `torchrun ... -m mtdsl run SPEC`)."""

from mtdsl.cli.main import main

main()
