from chatterbox_cli.cli import main

main()
