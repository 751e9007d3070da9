"""The web app, ``synesthesia app``: one Gradio tab per system of the library.

A room of its own on top of every other (like :mod:`synesthesia.cli`, it may import any room;
nothing imports it). One module per tab: :mod:`~synesthesia.app.image` (class to image),
:mod:`~synesthesia.app.text2image`, :mod:`~synesthesia.app.video`, :mod:`~synesthesia.app.audio`,
:mod:`~synesthesia.app.joint` (the joint embedding), :mod:`~synesthesia.app.samplers` (the exact
Gaussian-mixture denoiser), :mod:`~synesthesia.app.brain` and :mod:`~synesthesia.app.probes`;
:mod:`~synesthesia.app.main` assembles them (``build_app``, ``launch``). Each tab's work is a
plain function (``generate``, ``simulate``, ...) that the page and its API route both call.
Gradio is imported inside functions, so importing this package needs only the library.
"""
