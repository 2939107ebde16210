"""In-browser running, the layer under the targets: the allow-list HTTP server (:mod:`.server`,
shared with the phone demo), the benchmark page (``page/``) and the browser runtime adapter
(:mod:`.runner`). The drivers that open the page and the profiler for ``--runner browser`` are
in :mod:`edgegan.devices.browser` (this package imports nothing from ``edgegan.devices``)."""
