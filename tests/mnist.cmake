# MNIST end to end: real data (fetched once into <source>/data by jobs/fetch-mnist.sh),
# the IDX converter's error handling, data-parallel equivalence, and a short training
# that must clear an accuracy bar no untrained or broken model reaches.
set(SN_MNIST_DIR ${PROJECT_SOURCE_DIR}/data)
set(SN_MNIST_H5 ${SN_MNIST_DIR}/mnist.h5)

add_test(NAME mnist_fetch COMMAND ${PROJECT_SOURCE_DIR}/jobs/fetch-mnist.sh --build ${CMAKE_BINARY_DIR} ${SN_MNIST_DIR})
set_tests_properties(mnist_fetch PROPERTIES FIXTURES_SETUP mnist LABELS "mnist")

add_test(NAME mnist_prep_errors COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mnist_prep_errors.sh
         $<TARGET_FILE:sn-mnist-prep> ${SN_MNIST_DIR}/mnist-idx ${CMAKE_CURRENT_BINARY_DIR}/prep-errors)
set_tests_properties(mnist_prep_errors PROPERTIES FIXTURES_REQUIRED mnist LABELS "mnist;badinput")

add_test(NAME mnist_equivalence COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mnist_equivalence.sh
         $<TARGET_FILE:shardnet_cli> ${MPIEXEC_EXECUTABLE} ${SN_MNIST_H5} ${CMAKE_CURRENT_BINARY_DIR}/equivalence 2 4)
set_tests_properties(mnist_equivalence PROPERTIES FIXTURES_REQUIRED mnist LABELS "mnist;mpi"
                     ENVIRONMENT "${SN_TEST_ENV}")

# 2000 images, 3 epochs (186 steps), 2 ranks: an untrained net scores ~10%.
add_test(NAME mnist_train_short COMMAND ${MPIEXEC_EXECUTABLE} -np 2 --oversubscribe $<TARGET_FILE:shardnet_cli> train
         --data ${SN_MNIST_H5} --train-limit 2000 --test-limit 1000 --epochs 3 --threads 1
         --progress lines --min-accuracy 0.90)
set_tests_properties(mnist_train_short PROPERTIES FIXTURES_REQUIRED mnist LABELS "mnist;mpi"
                     ENVIRONMENT "${SN_TEST_ENV}")
