//! NumPy `.npy` reading and writing (under construction).
