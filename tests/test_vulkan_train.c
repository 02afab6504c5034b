/* 10 training steps on vulkan:0 against cpu:0, fp32 and fp16: see device_train.h. */
#include "device_train.h"

int main(void) { return device_train_main("vulkan"); }
