"""The kernel face: the `%perry` magics, the ipywidgets, their HTML drawing, and the hook
that hands kernels the server's URL and token."""
