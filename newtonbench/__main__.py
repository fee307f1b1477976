from newtonbench.cli import main

main()
