"""`myo demo`: a local web page to try a model. actions.py is what the page does (plain functions,
tested without a browser); page.py lays it out in Gradio and serves it. Like cli/, this is a front
end: it calls the work of `myo generate` (cli/generation.py), and nothing imports it but `myo demo`."""
