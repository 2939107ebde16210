"""Demos users start from: a live gallery on an ARM board (`pi`) and a phone page / WebView APK
(`phone`). Each module exposes ``add_arguments(parser)`` and ``run(args) -> int`` for `edgegan demo`."""
