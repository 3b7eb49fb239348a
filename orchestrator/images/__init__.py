"""Step 3, images: render Dockerfiles from the catalog, bootstrap offline bases, CUDA limits."""
