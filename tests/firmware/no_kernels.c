/* The tiny model needs no kernels; the firmware still links a kernel library. */
int tiny_no_kernels(void);
int tiny_no_kernels(void)
{
    return 0;
}
