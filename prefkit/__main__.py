from prefkit.cli import main

main()
