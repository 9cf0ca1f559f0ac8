//! Raster drawing and PNG output (under construction in this session).
