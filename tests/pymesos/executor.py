#!/usr/bin/env python3
"""pymesos (0.3.15) custom executor used by drover-tests' pymesos executor test
(tests/pymesos_executor.rs).
Based on the research example pymesos_exec_example.py.

Needs MESOS_AGENT_ENDPOINT, MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID (set by the agent).
For each LAUNCH: TASK_RUNNING; then waits (up to 10 s) for a framework message
"ping-<task>" and answers "pong-<task>"; then runs TaskInfo.data (base64 shell
command) if present, and reports TASK_FINISHED (or TASK_FAILED). Stays up for more
tasks until the agent sends SHUTDOWN.
"""
import logging, subprocess, threading
from pymesos import MesosExecutorDriver, Executor, decode_data, encode_data


class EchoExecutor(Executor):
    def __init__(self):
        self.pings = {}
        self.lock = threading.Lock()

    def _ping(self, task_id):
        with self.lock:
            return self.pings.setdefault(task_id, threading.Event())

    def registered(self, driver, executor_info, framework_info, agent_info):
        logging.info('registered: executor %s on agent %s', executor_info['executor_id']['value'],
                     agent_info.get('hostname'))

    def launchTask(self, driver, task):
        # Called on pymesos's IO thread: do the work elsewhere or no more events are read.
        threading.Thread(target=self._run, args=(driver, task), daemon=True).start()

    def _run(self, driver, task):
        task_id = task['task_id']
        driver.sendStatusUpdate(dict(task_id=task_id, state='TASK_RUNNING'))
        if self._ping(task_id['value']).wait(10):
            driver.sendFrameworkMessage(encode_data(('pong-' + task_id['value']).encode('utf-8')))
        else:
            logging.error('no ping for %s', task_id['value'])
        rc = 0
        if task.get('data'):
            rc = subprocess.call(decode_data(task['data']).decode('utf-8'), shell=True)
        driver.sendStatusUpdate(dict(task_id=task_id, state='TASK_FINISHED' if rc == 0 else 'TASK_FAILED',
                                     message='exit status %d' % rc))

    def frameworkMessage(self, driver, message):
        text = decode_data(message).decode('utf-8')
        logging.info('framework message %s', text)
        if text.startswith('ping-'):
            self._ping(text[len('ping-'):]).set()

    def killTask(self, driver, task_id):
        driver.sendStatusUpdate(dict(task_id=task_id, state='TASK_KILLED'))

    def shutdown(self, driver):
        logging.info('shutdown requested')


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO)
    MesosExecutorDriver(EchoExecutor()).run()  # returns after SHUTDOWN / disconnect
