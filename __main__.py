from horeca.cli import main

main()
