from kdnlp.cli.main import main

main()
