from synthmix.cli.app import main

main()
