from quanyu.cli.main import main

main()
