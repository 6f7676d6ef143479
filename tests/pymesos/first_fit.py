#!/usr/bin/env python3
"""pymesos (0.3.15) first-fit scheduler used by drover-tests' pymesos tests: launch N command
tasks first-fit, exit 0 when every one reached TASK_FINISHED, 1 otherwise.
Based on the research example pymesos_sched_example.py.

usage: first_fit.py MASTER [N] [SHELL_CMD]
  MASTER is "host:port", "host" (":5050" is appended) or "zk://..."; NOT "http://host:port".
  If EXECUTOR_CMD is set, each task runs under that custom executor (one shared ExecutorInfo)
  instead of a CommandInfo, e.g. EXECUTOR_CMD="python3 executor.py"; then each TASK_RUNNING
  is answered with a framework message "ping-<task>" and the executor's "pong-<task>"
  messages are counted (printed as "pongs N").
"""
import getpass, logging, os, socket, sys
from pymesos import MesosSchedulerDriver, Scheduler, decode_data, encode_data

CPUS, MEM = 0.1, 32.0
EXECUTOR_ID = 'pymesos-example-executor'
TERMINAL = {'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_LOST', 'TASK_ERROR',
            'TASK_DROPPED', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR', 'TASK_UNKNOWN'}


def scalar(offer, name):
    return sum(r['scalar']['value'] for r in offer.get('resources', []) if r['name'] == name and 'scalar' in r)


class FirstFit(Scheduler):
    def __init__(self, n, cmd, executor_cmd):
        self.pending, self.n, self.cmd, self.executor_cmd = ['task-%d' % i for i in range(n)], n, cmd, executor_cmd
        self.finished, self.failed, self.pongs = set(), set(), set()

    def registered(self, driver, framework_id, master_info):
        logging.info('registered as %s with master %s', framework_id['value'], master_info)

    def resourceOffers(self, driver, offers):
        for offer in offers:
            cpus, mem, tasks = scalar(offer, 'cpus'), scalar(offer, 'mem'), []
            while self.pending and cpus >= CPUS and mem >= MEM:
                tid = self.pending.pop(0)
                task = dict(name=tid, task_id=dict(value=tid), agent_id=offer['agent_id'], resources=[
                    dict(name='cpus', type='SCALAR', scalar=dict(value=CPUS)),
                    dict(name='mem', type='SCALAR', scalar=dict(value=MEM))])
                if self.executor_cmd:   # custom executor; TaskInfo.data is bytes -> base64 in JSON
                    task['executor'] = dict(executor_id=dict(value=EXECUTOR_ID), name='example',
                                            command=dict(value=self.executor_cmd, shell=True))
                    task['data'] = encode_data(self.cmd.encode('utf-8'))
                else:
                    task['command'] = dict(value=self.cmd, shell=True)
                tasks.append(task)
                cpus, mem = cpus - CPUS, mem - MEM
            if tasks:
                driver.launchTasks(offer['id'], tasks)        # -> ACCEPT{operations:[LAUNCH{task_infos}]}
            else:
                driver.declineOffer(offer['id'], dict(refuse_seconds=5.0))  # -> DECLINE

    def statusUpdate(self, driver, status):  # pymesos ACKNOWLEDGEs after this returns (implicit acks)
        tid, state = status['task_id']['value'], status['state']
        logging.info('%s -> %s %s', tid, state, status.get('message', ''))
        if state == 'TASK_RUNNING' and self.executor_cmd:
            driver.sendFrameworkMessage(dict(value=EXECUTOR_ID), status['agent_id'],
                                        encode_data(('ping-' + tid).encode('utf-8')))
        if state == 'TASK_FINISHED':
            self.finished.add(tid)
        elif state in TERMINAL:
            self.failed.add(tid)
        if len(self.finished) + len(self.failed) >= self.n:
            driver.stop()  # IO loop exits, sends TEARDOWN, driver.run() returns

    def frameworkMessage(self, driver, executor_id, agent_id, message):
        text = decode_data(message).decode('utf-8')
        logging.info('message from %s: %s', executor_id['value'], text)
        if text.startswith('pong-'):
            self.pongs.add(text[len('pong-'):])

    def error(self, driver, message):
        logging.error('master error: %s', message)


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    sched = FirstFit(n, sys.argv[3] if len(sys.argv) > 3 else 'echo hello', os.environ.get('EXECUTOR_CMD'))
    framework = dict(user=getpass.getuser(), name='pymesos-first-fit', hostname=socket.gethostname())
    MesosSchedulerDriver(sched, framework, sys.argv[1]).run()  # start() + join()
    print('finished %d failed %d of %d' % (len(sched.finished), len(sched.failed), n), flush=True)
    print('pongs %d' % len(sched.pongs), flush=True)
    sys.exit(0 if len(sched.finished) == n else 1)
