"""In-browser running: the allow-list HTTP server (:mod:`.server`, shared with the phone demo),
the benchmark page (``page/``), the browser runtime adapter (:mod:`.runner`), the drivers that
open the page (:mod:`.drivers`) and the profiler for ``--runner browser`` (:mod:`.profile`)."""
