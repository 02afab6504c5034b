/* 10 training steps of the cpu backend's fast path (CBLAS matmul where built with one) against its
 * reference kernels, fp32 and fp16: see device_train.h. */
#include "device_train.h"

int main(void) { return device_train_main("cpu"); }
